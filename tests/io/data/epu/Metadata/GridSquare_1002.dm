<GridSquareXml z:Id="1" z:Type="Applications.Epu.Persistence.GridSquareXml" xmlns="http://schemas.datacontract.org/2004/07/Applications.Epu.Persistence" xmlns:i="http://www.w3.org/2001/XMLSchema-instance" xmlns:z="http://schemas.microsoft.com/2003/10/Serialization/">
  <Id xmlns="http://schemas.datacontract.org/2004/07/Fei.Applications.Common.Types">1002</Id>
  <AtlasNodeId>1002</AtlasNodeId>
  <HoleSpacing>4.1280022158274845E-06</HoleSpacing>
  <Position xmlns:a="http://schemas.datacontract.org/2004/07/Fei.SharedObjects">
    <a:A>0</a:A>
    <a:B>0</a:B>
    <a:X>0.00015480011643376201</a:X>
    <a:Y>-5.8137102314503863E-05</a:Y>
    <a:Z>9.2991027587200039E-05</a:Z>
  </Position>
  <Selected>false</Selected>
  <State>InProgress</State>
  <TargetLocations z:Id="8" z:Type="Applications.Epu.Persistence.FoilHoleCollectionXml">
    <GridSquareId>1002</GridSquareId>
    <TargetLocationsEfficient z:Id="9" xmlns:a="http://schemas.microsoft.com/2003/10/Serialization/Arrays">
      <a:m_serializationArray z:Id="11" xmlns:b="http://schemas.datacontract.org/2004/07/System.Collections.Generic">
        <b:KeyValuePairOfintTargetLocationXmlBpEWF4JT>
          <b:key>2101</b:key>
          <b:value z:Id="h2101">
            <Id xmlns="http://schemas.datacontract.org/2004/07/Fei.Applications.Common.Types">2101</Id>
            <IsNearGridBar>false</IsNearGridBar>
            <PixelCenter xmlns:c="http://schemas.datacontract.org/2004/07/System.Drawing">
              <c:x>256</c:x>
              <c:y>256</c:y>
            </PixelCenter>
            <PixelWidthHeight xmlns:c="http://schemas.datacontract.org/2004/07/System.Drawing">
              <c:height>51.28809</c:height>
              <c:width>51.28809</c:width>
            </PixelWidthHeight>
            <Selected>false</Selected>
            <StagePosition xmlns:c="http://schemas.datacontract.org/2004/07/Fei.SharedObjects">
              <c:A>0</c:A>
              <c:B>0</c:B>
              <c:X>0.000154</c:X>
              <c:Y>-0.000058</c:Y>
              <c:Z>9.2991027587200039E-05</c:Z>
            </StagePosition>
            <State>Completed</State>
          </b:value>
        </b:KeyValuePairOfintTargetLocationXmlBpEWF4JT>
      </a:m_serializationArray>
    </TargetLocationsEfficient>
  </TargetLocations>
</GridSquareXml>
