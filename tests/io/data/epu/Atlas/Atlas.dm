<AtlasSessionXml z:Id="1" z:Type="Applications.SciencesAppsShared.GridAtlas.Persistence.AtlasSessionXml" xmlns="http://schemas.datacontract.org/2004/07/Applications.SciencesAppsShared.GridAtlas.Persistence" xmlns:i="http://www.w3.org/2001/XMLSchema-instance" xmlns:z="http://schemas.microsoft.com/2003/10/Serialization/">
  <Id xmlns="http://schemas.datacontract.org/2004/07/Fei.Applications.Common.Types">800001</Id>
  <Atlas z:Id="2">
    <Id xmlns="http://schemas.datacontract.org/2004/07/Fei.Applications.Common.Types">800001</Id>
    <AtlasImageReference z:Id="3" xmlns:a="http://schemas.datacontract.org/2004/07/Fei.Applications.Common.Types">
      <a:BaseFileName z:Id="4">Atlas_1</a:BaseFileName>
      <a:FileFormat>Mrc</a:FileFormat>
    </AtlasImageReference>
    <TilesEfficient z:Id="5">
      <_items z:Id="6" z:Size="1">
        <TileXml z:Id="7">
          <Id xmlns="http://schemas.datacontract.org/2004/07/Fei.Applications.Common.Types">800010</Id>
          <Nodes z:Id="8" xmlns:a="http://schemas.microsoft.com/2003/10/Serialization/Arrays">
            <KeyValuePairs z:Id="9" z:Size="2" xmlns="">
              <KeyValuePairOfintNodeXml30oatNZW xmlns="http://schemas.datacontract.org/2004/07/System.Collections.Generic">
                <key>1001</key>
                <value z:Id="10" xmlns:b="http://schemas.datacontract.org/2004/07/Applications.SciencesAppsShared.GridAtlas.Persistence">
                  <Id xmlns="http://schemas.datacontract.org/2004/07/Fei.Applications.Common.Types">1001</Id>
                  <b:PositionOnTheAtlas xmlns:c="http://schemas.datacontract.org/2004/07/Applications.SciencesAppsShared.GridAtlas.Datamodel">
                    <c:Center xmlns:d="http://schemas.datacontract.org/2004/07/System.Drawing">
                      <d:x>2236.751</d:x>
                      <d:y>1741.15442</d:y>
                    </c:Center>
                    <c:Size xmlns:d="http://schemas.datacontract.org/2004/07/System.Drawing">
                      <d:height>134.156143</d:height>
                      <d:width>143.233978</d:width>
                    </c:Size>
                  </b:PositionOnTheAtlas>
                  <b:StagePosition xmlns:c="http://schemas.datacontract.org/2004/07/Fei.SharedObjects">
                    <c:A>0</c:A>
                    <c:B>0</c:B>
                    <c:X>-0.00011746241943910718</c:X>
                    <c:Y>-0.00010944153473246843</c:Y>
                    <c:Z>0</c:Z>
                  </b:StagePosition>
                </value>
              </KeyValuePairOfintNodeXml30oatNZW>
              <KeyValuePairOfintNodeXml30oatNZW xmlns="http://schemas.datacontract.org/2004/07/System.Collections.Generic">
                <key>1002</key>
                <value z:Id="11" xmlns:b="http://schemas.datacontract.org/2004/07/Applications.SciencesAppsShared.GridAtlas.Persistence">
                  <Id xmlns="http://schemas.datacontract.org/2004/07/Fei.Applications.Common.Types">1002</Id>
                  <b:PositionOnTheAtlas xmlns:c="http://schemas.datacontract.org/2004/07/Applications.SciencesAppsShared.GridAtlas.Datamodel">
                    <c:Center xmlns:d="http://schemas.datacontract.org/2004/07/System.Drawing">
                      <d:x>1662.1853</d:x>
                      <d:y>1882.96545</d:y>
                    </c:Center>
                  </b:PositionOnTheAtlas>
                  <b:StagePosition xmlns:c="http://schemas.datacontract.org/2004/07/Fei.SharedObjects">
                    <c:A>0</c:A>
                    <c:B>0</c:B>
                    <c:X>0.00015480011643376201</c:X>
                    <c:Y>-5.8137102314503863E-05</c:Y>
                    <c:Z>0</c:Z>
                  </b:StagePosition>
                </value>
              </KeyValuePairOfintNodeXml30oatNZW>
            </KeyValuePairs>
          </Nodes>
        </TileXml>
      </_items>
      <_size>1</_size>
    </TilesEfficient>
  </Atlas>
</AtlasSessionXml>
